// Package corpus generates the demo model's text: short English stories
// from a probabilistic grammar written here (word lists included), seeded
// and reproducible byte for byte.
//
// A story introduces a character (a name with its pronouns, a kind, a
// trait), a home, a relative and sometimes a friend with a name of their
// own, and then tells one to three episodes that reuse them: finding an
// object that then breaks, is lost or is shared; a trip to a place with
// the things seen there and the weather; a quarrel over the object and
// making up; cooking; learning to do something hard. Names come back,
// pronouns agree with each character, the object found early is the one
// that matters later, and the ending refers to what happened. That
// structure is what a small model can learn and a unigram or bigram
// model cannot.
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

type object struct{ name, adj string }

type place struct {
	name   string   // "the park"
	at     string   // "At the park"
	sights []string // things seen there
	verb   string   // what a child does there
}

var (
	girls = []string{"Lily", "Mia", "Sara", "Anna", "Emma", "Lucy", "Zoe", "Nora", "Ella", "Ruby", "Maya", "Ivy",
		"Rosa", "Tess", "June", "Hana", "Amy", "Kate", "Lola", "Nina", "Olive", "Pia", "Clara", "Daisy"}
	boys = []string{"Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Finn", "Owen", "Noah", "Eli", "Luke", "Adam",
		"Hugo", "Theo", "Milo", "Ravi", "Dan", "Oscar", "Pete", "Toby", "Carl", "Ned", "Felix", "Jonas"}
	kinds  = []string{"girl", "boy", "bunny", "bear", "cat", "dog", "fox", "duck", "mouse", "frog", "pig", "lamb", "owl", "puppy", "kitten"}
	traits = []string{"happy", "little", "curious", "kind", "brave", "shy", "funny", "busy", "gentle", "clever", "silly", "sleepy", "quiet", "friendly"}
	homes  = []string{"in a small house near the woods", "in a big town by the sea", "on a farm with many animals", "on a quiet street",
		"in a tall tree in the park", "in a cozy hole under a hill", "in a village near a river", "in a bright blue house",
		"in a little flat above a bakery", "in a cabin on a snowy mountain", "on a boat on a calm lake", "in a red house by the road"}
	spots = []string{"under a bush", "next to the pond", "behind the old shed", "in the tall grass", "on the beach",
		"under the bed", "in the garden", "near the big rock", "in a pile of leaves", "on the kitchen table", "in the sand", "by the gate"}
	objects = []object{
		{"ball", "red"}, {"kite", "yellow"}, {"box", "shiny"}, {"book", "old"}, {"hat", "green"}, {"shell", "pink"},
		{"key", "golden"}, {"boat", "toy"}, {"drum", "small"}, {"cup", "blue"}, {"feather", "soft"}, {"stone", "smooth"},
		{"doll", "pretty"}, {"car", "fast"}, {"bell", "silver"}, {"map", "funny"}, {"robot", "little"}, {"crayon", "purple"},
	}
	relatives = []string{"mom", "dad", "grandma", "grandpa", "big sister", "big brother", "aunt", "uncle"}
	helpers   = []string{"a bird", "an old turtle", "a puppy", "a squirrel", "a wise owl", "a tiny ant", "a big dog", "a kind horse"}
	problems  = []struct{ what, fix string }{
		{"was stuck in a tree", "climbed up and got it down"},
		{"was broken", "fixed it with some glue"},
		{"was very dirty", "washed it with warm water"},
		{"fell into the water", "used a long stick to get it back"},
		{"was lost in the wind", "ran fast and caught it"},
		{"rolled under the fence", "dug a little hole and pulled it out"},
		{"got wet in the rain", "dried it in the warm sun"},
		{"was too high on the shelf", "stood on a chair and reached it"},
	}
	feelings = []string{"happy", "glad", "proud", "thankful", "excited"}
	places   = []place{
		{"the park", "At the park", []string{"swings", "a big slide", "ducks in the pond", "dogs running on the grass"}, "play on the swings"},
		{"the beach", "At the beach", []string{"big waves", "little crabs", "white birds", "shells in the sand"}, "build a sand castle"},
		{"the zoo", "At the zoo", []string{"a tall giraffe", "a loud lion", "two monkeys", "an elephant"}, "feed the goats"},
		{"the market", "At the market", []string{"red apples", "fresh bread", "bright flowers", "a man with a cart of cheese"}, "buy a sweet plum"},
		{"the forest", "In the forest", []string{"tall trees", "brown mushrooms", "a shy deer", "a stream with cold water"}, "look for pine cones"},
		{"the lake", "At the lake", []string{"fish in the water", "a white swan", "boats with sails", "frogs on a log"}, "throw stones in the water"},
		{"the library", "In the library", []string{"many books", "a quiet room", "a big globe", "a lady who read stories"}, "read a book about the stars"},
		{"the farm", "On the farm", []string{"brown cows", "pink pigs", "hens with chicks", "a sleepy cat in the barn"}, "collect the eggs"},
	}
	weathers = []struct{ sky, then string }{
		{"The sun was warm and the sky was blue.", ""},
		{"It was a windy day and the clouds were fast.", ""},
		{"It was cold, so they wore hats and coats.", ""},
		{"Then dark clouds came and it began to rain.", "rain"},
	}
	dishes = []struct{ name, things, help string }{
		{"a cake", "flour, eggs, milk and sugar", "mix the batter"},
		{"cookies", "butter, flour and sugar", "cut the dough into stars"},
		{"soup", "carrots, potatoes and water", "stir the pot"},
		{"pancakes", "eggs, milk and flour", "flip the pancakes"},
		{"a pie", "apples, sugar and flour", "press the dough into the dish"},
	}
	skills = []struct{ try, fail, win string }{
		{"ride a bike", "fell down and hurt a knee", "rode all the way to the corner"},
		{"swim", "got water in the nose", "swam across the little pool"},
		{"climb the big tree", "slipped on a branch", "climbed to the top and saw the whole town"},
		{"tie a shoe", "made a big knot", "tied a neat bow"},
		{"catch a ball", "missed it again and again", "caught the ball with both hands"},
		{"whistle", "only made a soft sound", "whistled a happy song"},
	}
	lessons = map[string]string{
		"find":  "it is good to ask for help",
		"trip":  "the world is full of things to see",
		"share": "sharing makes playing more fun",
		"cook":  "working together is fun",
		"skill": "if you keep trying, you can do hard things",
	}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func newPerson(r *rand.Rand, not string) person {
	for {
		var p person
		if r.IntN(2) == 0 {
			p = person{pick(r, girls), true, "she", "her", "her"}
		} else {
			p = person{pick(r, boys), false, "he", "him", "his"}
		}
		if p.name != not {
			return p
		}
	}
}

func capital(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func bare(s string) string { return strings.TrimPrefix(strings.TrimPrefix(s, "a "), "an ") }

// story holds what a story has established so far.
type story struct {
	r      *rand.Rand
	b      strings.Builder
	p      person  // the main character
	q      *person // a friend, once introduced
	rel    string
	obj    *object // the object, once found
	last   string  // the last episode told
	events []string
}

func (s *story) say(parts ...string) {
	if s.b.Len() > 0 {
		s.b.WriteByte(' ')
	}
	for _, p := range parts {
		s.b.WriteString(p)
	}
}

// Story returns one story drawn with r.
func Story(r *rand.Rand) string {
	s := &story{r: r, p: newPerson(r, "")}
	p := s.p
	kind := pick(r, kinds)
	if kind == "girl" && !p.she {
		kind = "boy"
	} else if kind == "boy" && p.she {
		kind = "girl"
	}
	trait := pick(r, traits)
	s.rel = pick(r, relatives)
	switch r.IntN(4) {
	case 0:
		s.say("Once upon a time, there was a ", trait, " ", kind, " named ", p.name, ".")
	case 1:
		s.say("There was once a ", trait, " ", kind, ". ", capital(p.poss), " name was ", p.name, ".")
	case 2:
		s.say("Once there was a ", kind, " called ", p.name, ". ", p.name, " was very ", trait, ".")
	default:
		s.say(p.name, " was a ", trait, " ", kind, ".")
	}
	s.say(capital(p.subj), " lived ", pick(r, homes), " with ", p.poss, " ", s.rel, ".")
	if r.IntN(2) == 0 {
		q := newPerson(r, p.name)
		s.q = &q
		s.say(p.name, " had a friend named ", q.name, ". ", q.name, " lived next door, and ", q.subj, " liked to play with ", p.obj, ".")
	} else if r.IntN(2) == 0 {
		s.say(p.name, " liked to play outside every day.")
	}
	n := 1 + r.IntN(3)
	for i := 0; i < n; i++ {
		s.episode(i)
	}
	s.ending()
	return s.b.String()
}

// episode tells one episode, chosen among those that fit what the story
// has so far.
func (s *story) episode(i int) {
	r := s.r
	opts := []string{"trip", "cook", "skill"}
	if s.obj == nil {
		opts = append(opts, "find", "find")
	} else if s.q != nil && s.last != "share" {
		opts = append(opts, "share", "share")
	}
	e := pick(r, opts)
	if e == s.last {
		e = pick(r, opts)
	}
	if i > 0 {
		s.say(pick(r, []string{"The next day,", "Later,", "After that,", "One morning,"}))
	} else {
		s.say("One day,")
	}
	switch e {
	case "find":
		s.find()
	case "trip":
		s.trip()
	case "share":
		s.share()
	case "cook":
		s.cook()
	case "skill":
		s.skill()
	}
	s.last = e
	s.events = append(s.events, e)
}

func (s *story) find() {
	r, p := s.r, s.p
	o := objects[r.IntN(len(objects))]
	s.obj = &o
	s.say(p.name, " found a ", o.adj, " ", o.name, " ", pick(r, spots), ".")
	switch r.IntN(3) {
	case 0:
		s.say("\"Look at this ", o.name, "!\" said ", p.name, ".")
	case 1:
		s.say(capital(p.subj), " ran to ", p.poss, " ", s.rel, " and said, \"I found a ", o.name, "!\"")
	default:
		s.say(p.name, " picked up the ", o.name, " and smiled.")
	}
	prob := problems[r.IntN(len(problems))]
	s.say("But the ", o.name, " ", prob.what, ".")
	s.say(p.name, " was sad.")
	switch r.IntN(3) {
	case 0:
		h := pick(r, helpers)
		s.say("Then ", h, " came by and saw ", p.obj, ".")
		s.say("\"Do not be sad,\" said the ", bare(h), ". \"I will help you.\"")
		s.say("Together they ", prob.fix, ".")
	case 1:
		if s.q != nil {
			q := s.q
			s.say(q.name, " saw ", p.name, " and came to help. ", capital(q.subj), " ", prob.fix, ".")
			s.say("\"Thank you, ", q.name, ",\" said ", p.name, ".")
			break
		}
		fallthrough
	default:
		s.say(capital(p.poss), " ", s.rel, " came and ", prob.fix, ".")
		s.say("\"Thank you,\" said ", p.name, ".")
	}
}

func (s *story) trip() {
	r, p := s.r, s.p
	pl := places[r.IntN(len(places))]
	who := p.poss + " " + s.rel
	if s.q != nil && r.IntN(2) == 0 {
		who = s.q.name
	}
	s.say(p.name, " and ", who, " went to ", pl.name, ".")
	w := weathers[r.IntN(len(weathers))]
	if w.then == "" {
		s.say(w.sky)
	}
	a := r.IntN(len(pl.sights))
	b := (a + 1 + r.IntN(len(pl.sights)-1)) % len(pl.sights)
	s.say(pl.at, ", they saw ", pl.sights[a], " and ", pl.sights[b], ".")
	s.say(p.name, " wanted to ", pl.verb, ".")
	if s.obj != nil && r.IntN(2) == 0 {
		s.say(capital(p.subj), " took the ", s.obj.name, " with ", p.obj, ", too.")
	}
	if w.then == "rain" {
		s.say(w.sky)
		s.say("They ran home and sat by the warm fire.")
	} else {
		s.say(capital(p.subj), " had a lot of fun. When the sun went down, they walked home.")
	}
}

func (s *story) share() {
	r, p, q, o := s.r, s.p, s.q, s.obj
	s.say(q.name, " saw the ", o.name, " and wanted to play with it too.")
	s.say("\"No, it is my ", o.name, "!\" said ", p.name, ".")
	s.say(q.name, " was sad and walked away.")
	switch r.IntN(2) {
	case 0:
		s.say("Then ", p.name, " felt bad. ", capital(p.subj), " ran after ", q.obj, " and said, \"I am sorry. We can share the ", o.name, ".\"")
	default:
		s.say(capital(p.poss), " ", s.rel, " said, \"It is kind to share, ", p.name, ".\" So ", p.name, " gave the ", o.name, " to ", q.name, ".")
	}
	s.say(q.name, " smiled, and they played with the ", o.name, " together.")
}

func (s *story) cook() {
	r, p := s.r, s.p
	d := dishes[r.IntN(len(dishes))]
	s.say(p.name, " and ", p.poss, " ", s.rel, " made ", d.name, ".")
	s.say("They used ", d.things, ".")
	switch r.IntN(3) {
	case 0:
		s.say(p.name, " put everything in a big bowl.")
	case 1:
		s.say(capital(p.subj), " made a mess on the floor, and they both laughed.")
	default:
		s.say(capital(p.poss), " ", s.rel, " let ", p.obj, " ", d.help, ".")
	}
	if s.q != nil && r.IntN(2) == 0 {
		s.say("When it was ready, ", p.name, " gave some to ", s.q.name, ". \"Yum!\" said ", s.q.name, ".")
	} else {
		s.say("When it was ready, it smelled so good. ", p.name, " ate it all up.")
	}
}

func (s *story) skill() {
	r, p := s.r, s.p
	k := skills[r.IntN(len(skills))]
	s.say(p.name, " wanted to ", k.try, ".")
	s.say(capital(p.subj), " tried, but ", p.subj, " ", k.fail, ".")
	teacher := p.poss + " " + s.rel
	if s.q != nil && r.IntN(2) == 0 {
		teacher = s.q.name
	}
	s.say("\"Try again,\" said ", teacher, ". \"You can do it.\"")
	s.say(p.name, " tried again and again. At last, ", p.subj, " ", k.win, "!")
}

func (s *story) ending() {
	r, p := s.r, s.p
	feel := pick(r, feelings)
	last := s.events[len(s.events)-1]
	switch {
	case s.obj != nil && r.IntN(2) == 0:
		switch r.IntN(3) {
		case 0:
			s.say(p.name, " was very ", feel, ". ", capital(p.subj), " played with the ", s.obj.name, " all day.")
		case 1:
			s.say("From that day on, ", p.name, " kept the ", s.obj.name, " in a safe place.")
		default:
			s.say(capital(p.subj), " gave the ", s.obj.name, " a hug and felt ", feel, ".")
		}
	case r.IntN(2) == 0:
		s.say("That night, ", p.name, " went to bed and dreamed about the day. ", capital(p.subj), " felt ", feel, ".")
	default:
		s.say(p.name, " learned that ", lessons[last], ".")
	}
	if s.q != nil && r.IntN(3) == 0 {
		s.say(p.name, " and ", s.q.name, " were best friends forever.")
	}
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
