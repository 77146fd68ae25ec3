// Package corpus generates the demo model's text: short English stories
// from a probabilistic grammar written here (word lists included), seeded
// and reproducible byte for byte.
//
// A story introduces a character (a name with its pronouns, a kind, a
// trait), a place, a companion and an object, and then reuses them: the
// name comes back, pronouns agree with the character, the object found
// early is the one that breaks, is lost or is shared later, and the
// ending refers to what happened. That structure is what a small model
// can learn and a unigram or bigram model cannot.
//
// Stories are separated by a blank line. [Generate] writes stories from
// a seed until a byte budget is reached.
package corpus

import (
	"bufio"
	"io"
	"math/rand/v2"
	"strings"
)

type person struct {
	name            string
	she             bool
	subj, obj, poss string // she/he, her/him, her/his
}

var (
	girls   = []string{"Lily", "Mia", "Sara", "Anna", "Emma", "Lucy", "Zoe", "Nora", "Ella", "Ruby", "Maya", "Ivy", "Rosa", "Tess", "June", "Hana"}
	boys    = []string{"Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Finn", "Owen", "Noah", "Eli", "Luke", "Adam", "Hugo", "Theo", "Milo", "Ravi"}
	kinds   = []string{"girl", "boy", "bunny", "bear", "cat", "dog", "fox", "duck", "mouse", "frog"}
	traits  = []string{"happy", "little", "curious", "kind", "brave", "shy", "funny", "busy", "gentle", "clever"}
	places  = []string{"a small house near the woods", "a big town by the sea", "a farm with many animals", "a quiet street", "a tall tree in the park", "a cozy hole under a hill", "a village near a river", "a bright blue house"}
	spots   = []string{"under a bush", "next to the pond", "behind the old shed", "in the tall grass", "on the beach", "under the bed", "in the garden", "near the big rock"}
	objects = []struct{ name, adj string }{
		{"ball", "red"}, {"kite", "yellow"}, {"box", "shiny"}, {"book", "old"}, {"hat", "green"}, {"shell", "pink"},
		{"key", "golden"}, {"boat", "toy"}, {"drum", "small"}, {"cup", "blue"}, {"feather", "soft"}, {"stone", "smooth"},
	}
	relatives = []string{"mom", "dad", "grandma", "grandpa", "big sister", "big brother"}
	friends   = []string{"a friend", "a bird", "an old turtle", "a puppy", "a squirrel", "a wise owl"}
	problems  = []struct{ what, fix string }{
		{"was stuck in a tree", "climbed up and got it down"},
		{"was broken", "fixed it with some glue"},
		{"was very dirty", "washed it with warm water"},
		{"fell into the water", "used a long stick to get it back"},
		{"was lost in the wind", "ran fast and caught it"},
	}
	feelings = []string{"happy", "glad", "proud", "thankful"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func newPerson(r *rand.Rand) person {
	if r.IntN(2) == 0 {
		return person{pick(r, girls), true, "she", "her", "her"}
	}
	return person{pick(r, boys), false, "he", "him", "his"}
}

func capital(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// Story returns one story drawn with r.
func Story(r *rand.Rand) string {
	p := newPerson(r)
	kind := pick(r, kinds)
	if kind == "girl" && !p.she {
		kind = "boy"
	} else if kind == "boy" && p.she {
		kind = "girl"
	}
	trait := pick(r, traits)
	obj := objects[r.IntN(len(objects))]
	rel := pick(r, relatives)
	friend := pick(r, friends)
	prob := problems[r.IntN(len(problems))]
	var b strings.Builder
	say := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	switch r.IntN(3) {
	case 0:
		say("Once upon a time, there was a " + trait + " " + kind + " named " + p.name + ".")
	case 1:
		say("There was once a " + trait + " " + kind + ". " + capital(p.poss) + " name was " + p.name + ".")
	default:
		say(p.name + " was a " + trait + " " + kind + ".")
	}
	say(capital(p.subj) + " lived in " + pick(r, places) + " with " + p.poss + " " + rel + ".")
	if r.IntN(2) == 0 {
		say(p.name + " liked to play outside every day.")
	}
	spot := pick(r, spots)
	say("One day, " + p.name + " found a " + obj.adj + " " + obj.name + " " + spot + ".")
	switch r.IntN(3) {
	case 0:
		say("\"Look at this " + obj.name + "!\" said " + p.name + ".")
	case 1:
		say(capital(p.subj) + " ran to " + p.poss + " " + rel + " and said, \"I found a " + obj.name + "!\"")
	default:
		say(p.name + " picked up the " + obj.name + " and smiled.")
	}
	say("But the " + obj.name + " " + prob.what + ".")
	say(p.name + " was sad.")
	if r.IntN(2) == 0 {
		say("Then " + friend + " came by and saw " + p.obj + ".")
		say("\"Do not be sad,\" said the " + strings.TrimPrefix(strings.TrimPrefix(friend, "a "), "an ") + ". \"I will help you.\"")
		say("Together they " + prob.fix + ".")
	} else {
		say(capital(p.poss) + " " + rel + " came and " + prob.fix + ".")
		say("\"Thank you,\" said " + p.name + ".")
	}
	feel := pick(r, feelings)
	switch r.IntN(3) {
	case 0:
		say(p.name + " was very " + feel + ". " + capital(p.subj) + " played with the " + obj.name + " all day.")
	case 1:
		say("From that day on, " + p.name + " kept the " + obj.name + " in a safe place.")
	default:
		say(capital(p.subj) + " gave the " + obj.name + " a hug and felt " + feel + ".")
	}
	return b.String()
}

// Generate writes stories drawn from math/rand/v2's PCG seeded (seed, 0),
// each followed by a blank line, until at least bytes bytes are written.
func Generate(w io.Writer, seed uint64, bytes int) error {
	r := rand.New(rand.NewPCG(seed, 0))
	bw := bufio.NewWriter(w)
	n := 0
	for n < bytes {
		s := Story(r)
		k, err := bw.WriteString(s + "\n\n")
		if err != nil {
			return err
		}
		n += k
	}
	return bw.Flush()
}
