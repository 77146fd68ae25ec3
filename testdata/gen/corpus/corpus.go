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
	kind            kind
}

// kind is what a character is, with what it says, eats and how it moves.
type kind struct{ name, sound, food, move string }

// object is a thing found; use may name the finder's pronouns as {subj},
// {obj} and {poss}.
type object struct {
	name string
	adjs [2]string
	use  string
}

type place struct {
	name   string   // "the park"
	at     string   // "At the park"
	sights []string // things seen there
	verbs  []string // what a child does there
}

var (
	girls = []string{"Lily", "Mia", "Sara", "Anna", "Emma", "Lucy", "Zoe", "Nora", "Ella", "Ruby", "Maya", "Ivy",
		"Rosa", "Tess", "June", "Hana", "Amy", "Kate", "Lola", "Nina", "Olive", "Pia", "Clara", "Daisy"}
	boys = []string{"Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Finn", "Owen", "Noah", "Eli", "Luke", "Adam",
		"Hugo", "Theo", "Milo", "Ravi", "Dan", "Oscar", "Pete", "Toby", "Carl", "Ned", "Felix", "Jonas"}
	kinds = []kind{
		{"girl", "laughed", "a cheese sandwich", "skipped"}, {"boy", "laughed", "a jam sandwich", "ran"},
		{"bunny", "thumped the ground", "a crunchy carrot", "hopped"}, {"bear", "growled softly", "a pot of honey", "lumbered"},
		{"cat", "purred", "a little fish", "crept"}, {"dog", "barked", "a big bone", "ran"},
		{"fox", "yipped", "a handful of berries", "dashed"}, {"duck", "quacked", "some bread crumbs", "waddled"},
		{"mouse", "squeaked", "a piece of cheese", "scurried"}, {"frog", "croaked", "a fat fly", "hopped"},
		{"pig", "oinked", "a bucket of corn", "trotted"}, {"lamb", "said baa", "some fresh grass", "skipped"},
		{"owl", "hooted", "a juicy bug", "flew"}, {"puppy", "yapped", "a dog biscuit", "bounced"},
		{"kitten", "mewed", "a bowl of milk", "tiptoed"}, {"horse", "neighed", "a sweet apple", "galloped"},
		{"goat", "bleated", "a pile of leaves", "climbed"}, {"chick", "peeped", "a few seeds", "hopped"},
		{"turtle", "hummed", "a lettuce leaf", "crawled"}, {"lion", "roared", "a big lunch", "strolled"},
	}
	traits = []string{"happy", "little", "curious", "kind", "brave", "shy", "funny", "busy", "gentle", "clever", "silly", "sleepy", "quiet", "friendly"}
	homes  = []string{"in a small house near the woods", "in a big town by the sea", "on a farm with many animals", "on a quiet street",
		"in a tall tree in the park", "in a cozy hole under a hill", "in a village near a river", "in a bright blue house",
		"in a little flat above a bakery", "in a cabin on a snowy mountain", "on a boat on a calm lake", "in a red house by the road"}
	spots = []string{"under a bush", "next to the pond", "behind the old shed", "in the tall grass", "on the beach",
		"under the bed", "in the garden", "near the big rock", "in a pile of leaves", "on the kitchen table", "in the sand", "by the gate"}
	objects = []object{
		{"ball", [2]string{"red", "bouncy"}, "kicked it across the yard"},
		{"kite", [2]string{"yellow", "paper"}, "flew it high in the sky"},
		{"book", [2]string{"old", "big"}, "read it under a tree"},
		{"hat", [2]string{"green", "funny"}, "wore it on {poss} head"},
		{"shell", [2]string{"pink", "pretty"}, "held it to {poss} ear and heard the sea"},
		{"key", [2]string{"golden", "rusty"}, "opened an old chest with it"},
		{"boat", [2]string{"toy", "wooden"}, "sailed it in the bath"},
		{"drum", [2]string{"small", "loud"}, "played a loud song on it"},
		{"cup", [2]string{"blue", "tiny"}, "drank warm milk from it"},
		{"feather", [2]string{"soft", "white"}, "tickled {poss} nose with it"},
		{"stone", [2]string{"smooth", "round"}, "kept it in {poss} pocket"},
		{"doll", [2]string{"pretty", "rag"}, "dressed it in a tiny coat"},
		{"car", [2]string{"fast", "toy"}, "raced it down the hall"},
		{"bell", [2]string{"silver", "little"}, "rang it, ding, ding"},
		{"map", [2]string{"funny", "old"}, "followed it to the old oak tree"},
		{"robot", [2]string{"little", "shiny"}, "made it dance on the floor"},
		{"crayon", [2]string{"purple", "orange"}, "drew a big sun with it"},
		{"scarf", [2]string{"striped", "warm"}, "wrapped it around {poss} neck"},
		{"whistle", [2]string{"shiny", "silver"}, "blew it as loud as {subj} could"},
		{"umbrella", [2]string{"spotty", "big"}, "opened it in the rain"},
		{"blanket", [2]string{"soft", "fluffy"}, "wrapped up in it for a nap"},
		{"puzzle", [2]string{"hard", "big"}, "put all the pieces together"},
		{"jar", [2]string{"glass", "empty"}, "filled it with shiny buttons"},
		{"basket", [2]string{"little", "woven"}, "filled it with berries"},
		{"ring", [2]string{"sparkly", "gold"}, "wore it on {poss} finger"},
		{"lamp", [2]string{"tiny", "magic"}, "lit it when it got dark"},
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
	feelings = []string{"happy", "glad", "proud", "thankful", "excited", "calm", "cozy"}
	places   = []place{
		{"the park", "At the park", []string{"swings", "a big slide", "ducks in the pond", "dogs running on the grass", "a man selling balloons", "kids flying kites"}, []string{"play on the swings", "go down the slide"}},
		{"the beach", "At the beach", []string{"big waves", "little crabs", "white birds", "shells in the sand", "a red boat", "a boy with a bucket"}, []string{"build a sand castle", "swim in the sea"}},
		{"the zoo", "At the zoo", []string{"a tall giraffe", "a loud lion", "two monkeys", "an elephant", "a sleepy bear", "pink birds"}, []string{"feed the goats", "see the penguins"}},
		{"the market", "At the market", []string{"red apples", "fresh bread", "bright flowers", "a man with a cart of cheese", "big pumpkins", "jars of honey"}, []string{"buy a sweet plum", "try some cheese"}},
		{"the forest", "In the forest", []string{"tall trees", "brown mushrooms", "a shy deer", "a stream with cold water", "a busy woodpecker", "a hollow log"}, []string{"look for pine cones", "build a little hut"}},
		{"the lake", "At the lake", []string{"fish in the water", "a white swan", "boats with sails", "frogs on a log", "a long dock", "tall reeds"}, []string{"throw stones in the water", "sail a paper boat"}},
		{"the library", "In the library", []string{"many books", "a quiet room", "a big globe", "a lady who read stories", "comfy chairs", "a book about dragons"}, []string{"read a book about the stars", "find a book about frogs"}},
		{"the farm", "On the farm", []string{"brown cows", "pink pigs", "hens with chicks", "a sleepy cat in the barn", "a red tractor", "a field of corn"}, []string{"collect the eggs", "ride on the tractor"}},
		{"the museum", "At the museum", []string{"old bones of a dinosaur", "shiny stones", "paintings of the sea", "a huge clock", "a knight in armor", "a model ship"}, []string{"draw the dinosaur", "find the biggest painting"}},
		{"the garden", "In the garden", []string{"red roses", "busy bees", "a snail on a leaf", "tall sunflowers", "a little pond", "ripe tomatoes"}, []string{"water the flowers", "pick some beans"}},
		{"the mountain", "On the mountain", []string{"white snow", "a rocky path", "an eagle in the sky", "a cold lake", "goats on the rocks", "tiny blue flowers"}, []string{"climb to the top", "look down at the valley"}},
		{"the playground", "At the playground", []string{"a sandbox", "a tall climbing frame", "a seesaw", "a merry-go-round", "kids playing tag", "a water fountain"}, []string{"ride the seesaw", "play tag"}},
		{"the bakery", "At the bakery", []string{"warm bread", "cakes with cream", "a baker with a white hat", "sweet buns", "a big oven", "cookies in a jar"}, []string{"pick a cupcake", "smell the fresh bread"}},
		{"the circus", "At the circus", []string{"a funny clown", "a girl on a rope", "jumping dogs", "a big red tent", "a man juggling balls", "a tiny car full of clowns"}, []string{"laugh at the clown", "eat some popcorn"}},
	}
	// seasons: the sky of a trip in each, and a rainy variant.
	seasons = []struct{ name, sky string }{
		{"spring", "The flowers were out and the birds sang in the trees."},
		{"summer", "The sun was hot and the sky was blue."},
		{"autumn", "Red and brown leaves fell from the trees."},
		{"winter", "It was cold, so they wore hats and coats."},
	}
	rain   = "Then dark clouds came and it began to rain."
	dishes = []struct{ name, things, help, meal string }{
		{"a cake", "flour, eggs, milk and sugar", "mix the batter", "after dinner"},
		{"cookies", "butter, flour and sugar", "cut the dough into stars", "with a glass of milk"},
		{"soup", "carrots, potatoes and water", "stir the pot", "for lunch"},
		{"pancakes", "eggs, milk and flour", "flip the pancakes", "for breakfast"},
		{"a pie", "apples, sugar and flour", "press the dough into the dish", "after dinner"},
		{"a salad", "lettuce, tomatoes and cheese", "wash the lettuce", "for lunch"},
		{"bread", "flour, water and salt", "knead the dough", "for dinner"},
	}
	skills = []struct{ try, fail, win string }{
		{"ride a bike", "fell down and hurt a knee", "rode all the way to the corner"},
		{"swim", "got water in the nose", "swam across the little pool"},
		{"climb the big tree", "slipped on a branch", "climbed to the top and saw the whole town"},
		{"tie a shoe", "made a big knot", "tied a neat bow"},
		{"catch a ball", "missed it again and again", "caught the ball with both hands"},
		{"whistle", "only made a soft sound", "whistled a happy song"},
		{"read a long word", "mixed up the letters", "read the word out loud"},
		{"jump rope", "tripped over the rope", "jumped ten times in a row"},
	}
	lessons = map[string]string{
		"find":  "it is good to ask for help",
		"trip":  "the world is full of things to see",
		"share": "sharing makes playing more fun",
		"cook":  "working together is fun",
		"skill": "if you keep trying, you can do hard things",
		"play":  "a good friend makes every day better",
	}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// newPerson draws a character other than the one named not: a name,
// its pronouns and a kind (girl or boy only as the name's gender).
func newPerson(r *rand.Rand, not string) person {
	for {
		var p person
		if r.IntN(2) == 0 {
			p = person{name: pick(r, girls), she: true, subj: "she", obj: "her", poss: "her"}
		} else {
			p = person{name: pick(r, boys), subj: "he", obj: "him", poss: "his"}
		}
		p.kind = pick(r, kinds)
		switch {
		case p.kind.name == "girl" && !p.she:
			p.kind = kinds[1]
		case p.kind.name == "boy" && p.she:
			p.kind = kinds[0]
		}
		if p.name != not {
			return p
		}
	}
}

// fill puts p's pronouns into a phrase's {subj}, {obj} and {poss}.
func (p person) fill(s string) string {
	return strings.NewReplacer("{subj}", p.subj, "{obj}", p.obj, "{poss}", p.poss).Replace(s)
}

func capital(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func bare(s string) string { return strings.TrimPrefix(strings.TrimPrefix(s, "a "), "an ") }

func article(s string) string {
	if strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// story holds what a story has established so far.
type story struct {
	r      *rand.Rand
	b      strings.Builder
	p      person  // the main character
	q      *person // a friend, once introduced
	rel    string
	season int     // index into seasons
	obj    *object // the object, once found
	adj    string  // its adjective
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
	s := &story{r: r, p: newPerson(r, ""), season: r.IntN(len(seasons))}
	p := s.p
	trait := pick(r, traits)
	s.rel = pick(r, relatives)
	switch r.IntN(4) {
	case 0:
		s.say("Once upon a time, there was ", article(trait), " ", p.kind.name, " named ", p.name, ".")
	case 1:
		s.say("There was once ", article(trait), " ", p.kind.name, ". ", capital(p.poss), " name was ", p.name, ".")
	case 2:
		s.say("Once there was ", article(p.kind.name), " called ", p.name, ". ", p.name, " was very ", trait, ".")
	default:
		s.say(p.name, " was ", article(trait), " ", p.kind.name, ".")
	}
	s.say(capital(p.subj), " lived ", pick(r, homes), " with ", p.poss, " ", s.rel, ".")
	if r.IntN(2) == 0 {
		q := newPerson(r, p.name)
		s.q = &q
		s.say(p.name, " had a friend, ", article(q.kind.name), " named ", q.name, ". ", q.name, " lived next door, and ", q.subj, " liked to play with ", p.obj, ".")
	} else if r.IntN(2) == 0 {
		s.say("Every day, ", p.name, " ", p.kind.move, " outside to play.")
	}
	if r.IntN(2) == 0 {
		s.say("It was ", seasons[s.season].name, ".")
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
	} else {
		opts = append(opts, "play")
		if s.q != nil && s.last != "share" {
			opts = append(opts, "share", "share")
		}
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
	case "play":
		s.play()
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
	s.obj, s.adj = &o, o.adjs[r.IntN(2)]
	s.say(p.name, " found ", article(s.adj), " ", o.name, " ", pick(r, spots), ".")
	switch r.IntN(3) {
	case 0:
		s.say("\"Look at this ", o.name, "!\" said ", p.name, ".")
	case 1:
		s.say(capital(p.subj), " ", p.kind.move, " to ", p.poss, " ", s.rel, " and said, \"I found ", article(s.adj), " ", o.name, "!\"")
	default:
		s.say(p.name, " picked up the ", o.name, " and ", p.kind.sound, ".")
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
			s.say(q.name, " saw ", p.name, " and ", q.kind.move, " over to help. ", capital(q.subj), " ", prob.fix, ".")
			s.say("\"Thank you, ", q.name, ",\" said ", p.name, ".")
			break
		}
		fallthrough
	default:
		s.say(capital(p.poss), " ", s.rel, " came and ", prob.fix, ".")
		s.say("\"Thank you,\" said ", p.name, ".")
	}
}

func (s *story) play() {
	r, p, o := s.r, s.p, s.obj
	s.say(p.name, " took the ", s.adj, " ", o.name, " and ", p.fill(o.use), ".")
	if s.q != nil && r.IntN(2) == 0 {
		q := s.q
		s.say(q.name, " ", q.kind.move, " over to watch. \"Can I try?\" asked ", q.name, ".")
		s.say("\"Yes,\" said ", p.name, ", and ", q.name, " ", q.fill(o.use), " too.")
	} else {
		s.say(p.name, " ", p.kind.sound, " with joy.")
	}
	s.say("Then ", p.name, " was hungry, so ", p.subj, " ate ", p.kind.food, ".")
}

func (s *story) trip() {
	r, p := s.r, s.p
	pl := places[r.IntN(len(places))]
	who := p.poss + " " + s.rel
	if s.q != nil && r.IntN(2) == 0 {
		who = s.q.name
	} else if s.q != nil && r.IntN(2) == 0 {
		q := s.q
		s.say("\"Where are you going, ", p.name, "?\" asked ", q.name, ".")
		s.say("\"We are going to ", pl.name, ",\" said ", p.name, ".")
	}
	s.say(p.name, " and ", who, " went to ", pl.name, ".")
	rainy := r.IntN(4) == 0
	if !rainy {
		s.say(seasons[s.season].sky)
	}
	a := r.IntN(len(pl.sights))
	b := (a + 1 + r.IntN(len(pl.sights)-1)) % len(pl.sights)
	s.say(pl.at, ", they saw ", pl.sights[a], " and ", pl.sights[b], ".")
	s.say(p.name, " wanted to ", pick(r, pl.verbs), ".")
	if s.obj != nil && r.IntN(2) == 0 {
		s.say(capital(p.subj), " took the ", s.obj.name, " with ", p.obj, ", too.")
	}
	if rainy {
		s.say(rain)
		s.say("They ran home and sat by the warm fire.")
	} else {
		s.say(capital(p.subj), " had a lot of fun. When the sun went down, they walked home.")
	}
}

func (s *story) share() {
	r, p, q, o := s.r, s.p, s.q, s.obj
	s.say(q.name, " saw the ", s.adj, " ", o.name, " and wanted to play with it too.")
	s.say("\"No, it is my ", o.name, "!\" said ", p.name, ".")
	s.say(q.name, " was sad and ", q.kind.move, " away.")
	switch r.IntN(2) {
	case 0:
		s.say("Then ", p.name, " felt bad. ", capital(p.subj), " ", p.kind.move, " after ", q.obj, " and said, \"I am sorry. We can share the ", o.name, ".\"")
	default:
		s.say(capital(p.poss), " ", s.rel, " said, \"It is kind to share, ", p.name, ".\" So ", p.name, " gave the ", o.name, " to ", q.name, ".")
	}
	s.say(q.name, " ", q.kind.sound, ", and they played with the ", o.name, " together.")
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
		s.say("When it was ready, it smelled so good. They ate it ", d.meal, ".")
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
	if r.IntN(2) == 0 {
		s.say(p.name, " ", p.kind.sound, " and ", p.kind.move, " around the yard.")
	}
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
			s.say("From that day on, ", p.name, " kept the ", s.adj, " ", s.obj.name, " in a safe place.")
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
